/**
 * The browser: breadcrumbs, the "as of" line, a filter, sortable columns and a
 * virtualized list of folders then files that loads pages as it scrolls.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import {
  caretDownIcon,
  caretUpIcon,
  codeIcon,
  downloadIcon,
  fileIcon,
  folderIcon,
  historyIcon,
  imageIcon,
  jsonIcon,
  LabIcon,
  searchIcon,
  spreadsheetIcon,
  textEditorIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorActions } from './actions';
import { IEntry, InfinstorModel, SortKey } from '../model';
import { formatBytes, formatCount, formatTime, TimeDisplay } from '../time';
import { VirtualList } from './virtuallist';
import { trans } from '../i18n';
import { OnSignals } from '../signals';

/** Height of a row, in pixels (fixed: the list is windowed). */
export const ROW_HEIGHT = 24;

/** Fetch the next page when the view gets this close to the end. */
const LOAD_AHEAD_ROWS = 60;

function iconFor(entry: IEntry): LabIcon {
  if (entry.kind === 'folder') {
    return folderIcon;
  }
  const lower = entry.name.toLowerCase();
  if (/\.(png|jpe?g|gif|bmp|webp|svg|tiff?)$/.test(lower)) {
    return imageIcon;
  }
  if (/\.(csv|tsv|parquet|xlsx?)$/.test(lower)) {
    return spreadsheetIcon;
  }
  if (/\.(json|jsonl|ndjson)$/.test(lower)) {
    return jsonIcon;
  }
  if (/\.(txt|md|log|ya?ml|xml|ini|cfg|py)$/.test(lower)) {
    return textEditorIcon;
  }
  return fileIcon;
}

function Breadcrumbs(props: { model: InfinstorModel }): JSX.Element | null {
  const { model } = props;
  const bucket = model.bucket;
  if (!bucket) {
    return null;
  }
  const parts = model.prefix.split('/').filter(Boolean);
  const crumbs = [
    <button
      key="root"
      className="jp-Infinstor-crumb"
      title={`s3://${bucket}/`}
      onClick={() => model.setPrefix('')}
    >
      {bucket}
    </button>
  ];
  let acc = '';
  parts.forEach((part, i) => {
    acc += `${part}/`;
    const target = acc;
    crumbs.push(
      <span key={`sep-${i}`} className="jp-Infinstor-crumb-sep">
        /
      </span>
    );
    crumbs.push(
      <button
        key={`c-${i}`}
        className="jp-Infinstor-crumb"
        title={`s3://${bucket}/${target}`}
        onClick={() => model.setPrefix(target)}
        aria-current={i === parts.length - 1 ? 'page' : undefined}
      >
        {part}
      </button>
    );
  });
  return (
    <nav
      className="jp-Infinstor-breadcrumbs"
      aria-label={trans.__('Folder')}
      data-testid="breadcrumbs"
    >
      {crumbs}
    </nav>
  );
}

/** The "as of ..." line: what time the rows show. */
export function AsOf(props: { model: InfinstorModel }): JSX.Element | null {
  const { model } = props;
  const spec = model.spec;
  if (!model.bucket) {
    return null;
  }
  if (!spec) {
    if (model.mode === 'label' && !model.label) {
      return (
        <div className="jp-Infinstor-asof">{trans.__('Choose a label.')}</div>
      );
    }
    return null;
  }
  // A time that has not come shows the bucket as it is now: the live (green)
  // banner, with a note, never the orange "past" one headed by that time.
  const future = spec.future === true;
  const live = model.mode === 'now' || (future && spec.kind === 'snapshot');
  const display = model.settings.timeDisplay;
  let text: string;
  if (future && spec.kind === 'snapshot') {
    text = trans.__('live: the bucket as it is now');
  } else if (live) {
    text = trans.__('%1 (live)', spec.display);
  } else {
    text = spec.display;
  }
  let note = '';
  if (future && spec.kind === 'snapshot') {
    note = trans.__(
      '%1 is in the future, so this is the bucket as it is now.',
      formatTime(spec.end_ms, display)
    );
  } else if (future) {
    note = trans.__(
      'The slice ends in the future (%1): it shows what arrived up to now.',
      formatTime(spec.end_ms, display)
    );
  }
  const labelPart =
    model.mode === 'label' && model.label
      ? trans.__('label %1: ', model.label)
      : '';
  return (
    <div
      className={`jp-Infinstor-asof ${live ? 'jp-mod-live' : 'jp-mod-past'}`}
      data-testid="asof"
      data-future={future ? 'true' : undefined}
      // The full line (and the spec) on hover: the line itself is cut to one
      // line in a narrow sidebar rather than wrapping over the rows.
      title={`${labelPart}${text}${note ? `\n${note}` : ''}\n${spec.canonical}`}
    >
      <historyIcon.react tag="span" className="jp-Infinstor-icon" />
      <div className="jp-Infinstor-asof-text">
        <span className="jp-Infinstor-asof-line">
          {model.mode === 'label' && model.label ? (
            <>
              {trans.__('label')} <b>{model.label}</b>:{' '}
            </>
          ) : null}
          {text}
        </span>
        {note && (
          <span className="jp-Infinstor-asof-note" data-testid="asof-note">
            {note}
          </span>
        )}
      </div>
    </div>
  );
}

function SortHeader(props: {
  model: InfinstorModel;
  column: SortKey;
  label: string;
  className: string;
}): JSX.Element {
  const { model, column, label, className } = props;
  const active = model.sortKey === column;
  const Icon = model.sortAscending ? caretUpIcon : caretDownIcon;
  return (
    <div
      className={`jp-Infinstor-col ${className} ${active ? 'jp-mod-sorted' : ''}`}
      role="columnheader"
      aria-sort={
        active ? (model.sortAscending ? 'ascending' : 'descending') : 'none'
      }
      tabIndex={0}
      onClick={() => model.setSort(column)}
      onKeyDown={e => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          model.setSort(column);
        }
      }}
    >
      <span>{label}</span>
      {active && <Icon.react tag="span" className="jp-Infinstor-sortIcon" />}
    </div>
  );
}

const Row = React.memo(function Row(props: {
  entry: IEntry;
  top: number;
  selected: boolean;
  display: TimeDisplay;
  onActivate: (entry: IEntry) => void;
  onSelect: (entry: IEntry) => void;
  actions: InfinstorActions;
}): JSX.Element {
  const { entry, top, selected, display, onActivate, onSelect, actions } =
    props;
  const Icon = iconFor(entry);
  const isFile = entry.kind === 'file';
  return (
    <div
      className={`jp-Infinstor-row ${selected ? 'jp-mod-selected' : ''} jp-mod-${entry.kind}`}
      style={{ transform: `translateY(${top}px)`, height: ROW_HEIGHT }}
      role="row"
      aria-selected={selected}
      data-key={entry.key}
      data-kind={entry.kind}
      // The full values on hover: a narrow sidebar shortens or drops columns,
      // and the selected row's icons take the place of Size and Modified.
      title={
        isFile
          ? `${entry.key}\n${formatBytes(entry.size)} · ${formatTime(entry.modifiedMs, display)}`
          : entry.key
      }
      onClick={() => onSelect(entry)}
      onDoubleClick={() => onActivate(entry)}
      onContextMenu={() => onSelect(entry)}
    >
      <div className="jp-Infinstor-col jp-Infinstor-col-name" role="gridcell">
        <Icon.react tag="span" className="jp-Infinstor-rowIcon" />
        <span className="jp-Infinstor-name">{entry.name}</span>
      </div>
      {selected && (
        <div className="jp-Infinstor-rowActions">
          {isFile && (
            <button
              className="jp-Infinstor-iconButton"
              title={trans.__('Preview this version')}
              aria-label={trans.__('Preview')}
              onClick={e => {
                e.stopPropagation();
                actions.preview(actions.target(entry));
              }}
            >
              <searchIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
          )}
          {isFile && (
            <button
              className="jp-Infinstor-iconButton"
              title={trans.__('Download this version')}
              aria-label={trans.__('Download')}
              onClick={e => {
                e.stopPropagation();
                void actions.download(actions.target(entry));
              }}
            >
              <downloadIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
          )}
          {isFile && (
            <button
              className="jp-Infinstor-iconButton"
              title={trans.__('History of this key')}
              aria-label={trans.__('History')}
              onClick={e => {
                e.stopPropagation();
                actions.history(actions.target(entry));
              }}
            >
              <historyIcon.react tag="span" className="jp-Infinstor-icon" />
            </button>
          )}
          <button
            className="jp-Infinstor-iconButton"
            title={trans.__('Insert code that reads this in the notebook')}
            aria-label={trans.__('Insert code')}
            onClick={e => {
              e.stopPropagation();
              actions.insertCode(actions.target(entry));
            }}
          >
            <codeIcon.react tag="span" className="jp-Infinstor-icon" />
          </button>
        </div>
      )}
      <div className="jp-Infinstor-col jp-Infinstor-col-size" role="gridcell">
        {isFile ? formatBytes(entry.size) : ''}
      </div>
      <div
        className="jp-Infinstor-col jp-Infinstor-col-modified"
        role="gridcell"
        title={isFile ? formatTime(entry.modifiedMs, display) : ''}
      >
        {isFile && (
          <>
            <span className="jp-Infinstor-modLong">
              {formatTime(entry.modifiedMs, display).slice(0, 19)}
            </span>
            <span className="jp-Infinstor-modShort">
              {shortTime(entry.modifiedMs, display)}
            </span>
          </>
        )}
      </div>
    </div>
  );
});

/**
 * Modified, shortened for a narrow sidebar: the time of day for today, else
 * the date (the full time is the cell's title).
 */
export function shortTime(ms: number, display: TimeDisplay): string {
  const full = formatTime(ms, display);
  const today = formatTime(Date.now(), display).slice(0, 10);
  return full.slice(0, 10) === today ? full.slice(11, 19) : full.slice(0, 10);
}

/** `2 folders, 10 files match (of 1,200 loaded), more to load`. */
function listingStatus(
  model: InfinstorModel,
  folders: number,
  files: number
): string {
  // In plural forms %1 is the raw number and %2 the number as shown.
  let text = trans.__(
    '%1, %2',
    trans._n('%2 folder', '%2 folders', folders, formatCount(folders)),
    trans._n('%2 file', '%2 files', files, formatCount(files))
  );
  if (model.filter) {
    text = trans.__(
      '%1 match (of %2 loaded)',
      text,
      formatCount(model.loadedCount)
    );
  }
  if (model.hasMore) {
    text = trans.__('%1, more to load', text);
  }
  return text;
}

export function Browser(props: {
  model: InfinstorModel;
  actions: InfinstorActions;
}): JSX.Element {
  const { model, actions } = props;
  const entries = model.entries;
  const display = model.settings.timeDisplay;
  const selected = model.selected;
  const selectedIndex = selected ? entries.indexOf(selected) : -1;
  const [scrollTo, setScrollTo] = React.useState<number | undefined>(undefined);

  const activate = React.useCallback(
    (entry: IEntry) => {
      if (entry.kind === 'folder') {
        model.setPrefix(entry.key);
      } else {
        actions.preview(actions.target(entry));
      }
    },
    [model, actions]
  );
  const select = React.useCallback(
    (entry: IEntry) => model.select(entry),
    [model]
  );

  const onVisibleRange = React.useCallback(
    (_first: number, last: number) => {
      const near = last >= model.entries.length - LOAD_AHEAD_ROWS;
      if (near && model.hasMore && !model.loading && !model.listingError) {
        if (!model.filter || model.filterMayAutoload) {
          void model.loadMore();
        }
      }
    },
    [model]
  );

  // Benchmarks read when the rows of the last page reached the DOM.
  React.useLayoutEffect(() => {
    model.renderMetrics = {
      pageReceived: model.metrics.pageReceived,
      committed: performance.now(),
      entries: entries.length
    };
  });

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (!entries.length) {
      return;
    }
    let index = selectedIndex;
    switch (event.key) {
      case 'ArrowDown':
        index = Math.min(entries.length - 1, index + 1);
        break;
      case 'ArrowUp':
        index = Math.max(0, index - 1);
        break;
      case 'Home':
        index = 0;
        break;
      case 'End':
        index = entries.length - 1;
        break;
      case 'Enter':
        if (selected) {
          activate(selected);
        }
        event.preventDefault();
        return;
      case 'Backspace': {
        const parts = model.prefix.split('/').filter(Boolean);
        parts.pop();
        model.setPrefix(parts.length ? `${parts.join('/')}/` : '');
        event.preventDefault();
        return;
      }
      default:
        return;
    }
    event.preventDefault();
    model.select(entries[index]);
    setScrollTo(index);
  };

  if (!model.bucket) {
    return (
      <div className="jp-Infinstor-browser">
        <div className="jp-Infinstor-note">
          {trans.__(
            'Track a bucket (Buckets section) or choose one to browse it.'
          )}
        </div>
      </div>
    );
  }

  const folders = entries.filter(e => e.kind === 'folder').length;
  return (
    <div className="jp-Infinstor-browser" data-testid="browser">
      <Breadcrumbs model={model} />
      <AsOf model={model} />
      <div className="jp-Infinstor-filter">
        <input
          className="jp-mod-styled jp-Infinstor-filterInput"
          type="search"
          placeholder={trans.__('Filter by name')}
          aria-label={trans.__('Filter by name')}
          data-testid="filter"
          value={model.filter}
          onChange={e => model.setFilter(e.currentTarget.value)}
        />
      </div>
      <div className="jp-Infinstor-header" role="row">
        <SortHeader
          model={model}
          column="name"
          label={trans.__('Name')}
          className="jp-Infinstor-col-name"
        />
        <SortHeader
          model={model}
          column="size"
          label={trans.__('Size')}
          className="jp-Infinstor-col-size"
        />
        <SortHeader
          model={model}
          column="modified"
          label={trans.__('Modified')}
          className="jp-Infinstor-col-modified"
        />
      </div>
      <VirtualList
        items={entries}
        rowHeight={ROW_HEIGHT}
        scrollToIndex={scrollTo}
        onVisibleRange={onVisibleRange}
        className="jp-Infinstor-list"
        containerProps={{
          role: 'grid',
          'aria-label': trans.__('Objects'),
          'aria-rowcount': entries.length,
          tabIndex: 0,
          onKeyDown
        }}
        empty={
          model.loading ? null : model.listingError ? null : (
            <div className="jp-Infinstor-note jp-Infinstor-empty">
              {model.filter
                ? trans.__('Nothing matches the filter in the entries loaded.')
                : model.mode === 'slice'
                  ? trans.__('Nothing arrived here in this window.')
                  : trans.__('This folder is empty at this time.')}
            </div>
          )
        }
        renderRow={(entry, index, top) => (
          <Row
            key={entry.key}
            entry={entry}
            top={top}
            selected={entry === selected}
            display={display}
            onActivate={activate}
            onSelect={select}
            actions={actions}
          />
        )}
      />
      {model.listingError && (
        <div
          className="jp-Infinstor-error"
          role="alert"
          data-testid="listing-error"
        >
          {model.listingError}
        </div>
      )}
      <div className="jp-Infinstor-footer" data-testid="listing-status">
        <span title={listingStatus(model, folders, entries.length - folders)}>
          {listingStatus(model, folders, entries.length - folders)}
        </span>
        {model.loading && (
          <span
            className="jp-Infinstor-spinner"
            aria-label={trans.__('Loading')}
          />
        )}
        {model.hasMore && !model.loading && (
          <button
            className="jp-Infinstor-linkButton"
            onClick={() => void model.loadMore()}
          >
            {trans.__('Load more')}
          </button>
        )}
      </div>
    </div>
  );
}

/** The browser section's content. */
export class BrowserWidget extends ReactWidget {
  constructor(
    private readonly _model: InfinstorModel,
    private readonly _actions: InfinstorActions
  ) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
    this.addClass('jp-Infinstor-browserBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[
          model.listingChanged,
          model.stateChanged,
          model.selectionChanged,
          model.settingsChanged
        ]}
      >
        {() => <Browser model={model} actions={this._actions} />}
      </OnSignals>
    );
  }
}
