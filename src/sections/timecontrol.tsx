/**
 * The time control: Now / Snapshot / Slice / Label, a date-time picker (local
 * time or UTC, to the second), a free-text time spec checked by the server,
 * and the timeline.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import { HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorModel, TimeMode } from '../model';
import {
  parseInputValue,
  secondEnd,
  secondStart,
  TimeDisplay,
  toInputValue
} from '../time';
import { Timeline } from './timeline';
import { trans } from '../i18n';
import { OnSignals } from '../signals';

/** The time modes, with their (translated) names and explanations. */
function modes(): { mode: TimeMode; label: string; title: string }[] {
  return [
    {
      mode: 'now',
      label: trans.__('Now'),
      title: trans.__('The bucket as it is now (live)')
    },
    {
      mode: 'snapshot',
      label: trans.__('Snapshot'),
      title: trans.__('The bucket as it was at one second')
    },
    {
      mode: 'slice',
      label: trans.__('Slice'),
      title: trans.__('Only what arrived between two times')
    },
    {
      mode: 'label',
      label: trans.__('Label'),
      title: trans.__('A named, pinned view')
    }
  ];
}

/**
 * A date-time picker to the second, in local time or UTC as the *Time display*
 * setting says. It is a text field in the sidebar's one time form
 * (`2026-11-20 10:00:00`), not the browser's date-time input, whose locale
 * form (a 12-hour clock, a month-first date) would sit beside our 24-hour times.
 * A typed time applies on Enter or when the field is left.
 */
export function TimePicker(props: {
  value: number | null;
  display: TimeDisplay;
  label: string;
  /** Called with the first millisecond of the chosen second. */
  onChange: (ms: number) => void;
  testId?: string;
}): JSX.Element {
  const { value, display, label, onChange, testId } = props;
  const id = React.useMemo(
    () => `jp-Infinstor-picker-${Math.random().toString(36).slice(2)}`,
    []
  );
  const shown = value === null ? '' : toInputValue(value, display);
  const [draft, setDraft] = React.useState<string | null>(null);
  const text = draft ?? shown;
  const invalid = draft !== null && parseInputValue(draft, display) === null;
  const commit = () => {
    if (draft === null) {
      return;
    }
    const ms = parseInputValue(draft, display);
    if (ms !== null) {
      setDraft(null);
      if (draft.trim() !== shown) {
        onChange(ms);
      }
    }
  };
  return (
    <div className="jp-Infinstor-picker jp-mod-stacked">
      <label htmlFor={id}>
        {label}{' '}
        <span className="jp-Infinstor-zone">
          {display === 'utc' ? trans.__('(UTC)') : trans.__('(local time)')}
        </span>
      </label>
      <input
        id={id}
        className={`jp-mod-styled jp-Infinstor-dateInput ${invalid ? 'jp-mod-invalid' : ''}`}
        type="text"
        inputMode="numeric"
        spellCheck={false}
        placeholder={trans.__('YYYY-MM-DD HH:MM:SS')}
        aria-invalid={invalid ? true : undefined}
        title={
          invalid
            ? trans.__('Write the time as YYYY-MM-DD HH:MM:SS (24-hour clock).')
            : trans.__('YYYY-MM-DD HH:MM:SS; Enter applies it.')
        }
        data-testid={testId}
        value={text}
        onChange={event => setDraft(event.currentTarget.value)}
        onBlur={commit}
        onKeyDown={event => {
          if (event.key === 'Enter') {
            event.preventDefault();
            commit();
          } else if (event.key === 'Escape') {
            setDraft(null);
          }
        }}
      />
    </div>
  );
}

const FORMS_MARK = ' Accepted time specs: ';

/**
 * The server's message about a spec. Its list of accepted forms is long for a
 * sidebar, so it folds away under the message's first sentence.
 */
function SpecError(props: { message: string }): JSX.Element {
  const at = props.message.indexOf(FORMS_MARK);
  const head = at >= 0 ? props.message.slice(0, at) : props.message;
  const forms = at >= 0 ? props.message.slice(at + FORMS_MARK.length) : '';
  return (
    <div className="jp-Infinstor-error" role="alert" data-testid="spec-error">
      {head}
      {forms && (
        <details>
          <summary>{trans.__('Accepted time specs')}</summary>
          {forms}
        </details>
      )}
    </div>
  );
}

/** The free-text time spec, checked by `GET timespec` on Enter. */
function SpecField(props: { model: InfinstorModel }): JSX.Element {
  const { model } = props;
  const current = model.specText();
  const [text, setText] = React.useState(current);
  const [dirty, setDirty] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    if (!dirty) {
      setText(current);
    }
  }, [current, dirty]);

  const apply = async () => {
    setBusy(true);
    try {
      await model.applySpec(text);
      setError(null);
      setDirty(false);
    } catch (e) {
      setError((e as Error).message || String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-Infinstor-spec">
      <div className="jp-Infinstor-spec-row">
        <input
          className={`jp-mod-styled jp-Infinstor-specInput ${error ? 'jp-mod-invalid' : ''}`}
          type="text"
          spellCheck={false}
          aria-label={trans.__('Time spec')}
          aria-invalid={error ? true : undefined}
          data-testid="spec-input"
          data-state={
            busy ? 'checking' : error ? 'error' : dirty ? 'edited' : 'applied'
          }
          placeholder={trans.__(
            'tm20261120100000, 2026-11-20T10:00:00Z/…, label:/name'
          )}
          value={text}
          onChange={event => {
            setText(event.currentTarget.value);
            setDirty(true);
          }}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              event.preventDefault();
              void apply();
            } else if (event.key === 'Escape') {
              setText(current);
              setDirty(false);
              setError(null);
            }
          }}
        />
        <button
          className="jp-mod-styled jp-Infinstor-smallButton"
          disabled={busy}
          onClick={() => void apply()}
          title={trans.__('Check the spec with the server and show that time')}
        >
          {trans.__('Go')}
        </button>
      </div>
      {error && <SpecError message={error} />}
    </div>
  );
}

export function TimeControl(props: { model: InfinstorModel }): JSX.Element {
  const { model } = props;
  const display = model.settings.timeDisplay;
  const mode = model.mode;
  return (
    <div className="jp-Infinstor-time" data-testid="time-control">
      <div
        className="jp-Infinstor-modes"
        role="radiogroup"
        aria-label={trans.__('Time mode')}
      >
        {modes().map(m => (
          <button
            key={m.mode}
            role="radio"
            aria-checked={mode === m.mode}
            className={`jp-Infinstor-mode ${mode === m.mode ? 'jp-mod-active' : ''}`}
            title={m.title}
            data-mode={m.mode}
            onClick={() => model.setMode(m.mode)}
          >
            {m.label}
          </button>
        ))}
      </div>
      {mode === 'snapshot' && (
        <TimePicker
          label={trans.__('At')}
          value={model.atMs}
          display={display}
          testId="snapshot-picker"
          onChange={ms => model.setSnapshot(secondEnd(ms))}
        />
      )}
      {mode === 'slice' && (
        <>
          <TimePicker
            label={trans.__('From')}
            value={model.sliceStartMs}
            display={display}
            testId="slice-from-picker"
            onChange={ms =>
              model.setSlice(secondStart(ms), model.sliceEndMs ?? secondEnd(ms))
            }
          />
          <TimePicker
            label={trans.__('To')}
            value={model.sliceEndMs}
            display={display}
            testId="slice-to-picker"
            onChange={ms =>
              model.setSlice(
                model.sliceStartMs ?? secondStart(ms),
                secondEnd(ms)
              )
            }
          />
        </>
      )}
      {mode === 'label' && (
        <div className="jp-Infinstor-picker">
          <label>{trans.__('Label')}</label>
          {model.labels.length ? (
            <HTMLSelect
              aria-label={trans.__('Label')}
              value={model.label ?? ''}
              onChange={event => model.useLabel(event.currentTarget.value)}
              options={[
                ...(model.label
                  ? []
                  : [{ label: trans.__('Choose a label…'), value: '' }]),
                ...model.labels.map(l => ({ label: l.name, value: l.name }))
              ]}
            />
          ) : (
            <span className="jp-Infinstor-note">
              {trans.__(
                'No labels yet: create one from a view in the Labels section.'
              )}
            </span>
          )}
        </div>
      )}
      <SpecField model={model} />
      <Timeline model={model} display={display} />
    </div>
  );
}

/** The time section's content. */
export class TimeControlWidget extends ReactWidget {
  constructor(private readonly _model: InfinstorModel) {
    super();
    this.addClass('jp-Infinstor-sectionBody');
  }

  render(): JSX.Element {
    const model = this._model;
    return (
      <OnSignals
        signals={[
          model.stateChanged,
          model.timelineChanged,
          model.settingsChanged,
          model.labelsChanged,
          model.listingChanged
        ]}
      >
        {() => <TimeControl model={model} />}
      </OnSignals>
    );
  }
}
