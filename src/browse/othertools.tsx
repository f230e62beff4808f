/**
 * "Use from other tools…": a view credential for the S3 endpoint, for exactly the
 * view the sidebar shows, with a snippet per client and *Insert code*.
 */
import {
  Clipboard,
  Dialog,
  Notification,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import { copyIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { InfinstorActions } from './actions';
import {
  IIssuedViewCredential,
  IRun,
  IViewCredentialCreate
} from '../api/types';
import { InfinstorClient } from '../api/client';
import { errorMessage } from '../errors';
import { trans } from '../i18n';
import { InfinstorModel } from '../model';
import { CommandIDs } from '../tokens';
import {
  credentialViewSpec,
  IToolSnippet,
  snippetContext,
  ToolId,
  toolSnippets
} from './toolsnippets';

/** The dialog button's action that opens the *View Credentials* tab. */
const ALL_CREDENTIALS = 'infinstor-all-credentials';

/** How long a credential from the sidebar lasts (the server's default). */
export const SIDEBAR_EXPIRES = '7d';

/**
 * The `POST endpoint/credentials` body for the sidebar's current view: its time
 * pinned to absolute times, and its bucket and folder (a label keeps its own).
 */
export function credentialRequest(
  model: InfinstorModel
): IViewCredentialCreate | null {
  const bucket = model.bucket;
  const view = credentialViewSpec(model.pinnedViewParams());
  if (!bucket || !view) {
    return null;
  }
  const body: IViewCredentialCreate = {
    view,
    expires: SIDEBAR_EXPIRES,
    description: trans.__('from the sidebar')
  };
  if (!view.startsWith('label:/')) {
    body.bucket = bucket;
    if (model.prefix) {
      body.prefix = model.prefix;
    }
  }
  return body;
}

/**
 * The `POST endpoint/credentials` body for a transform run's own input view:
 * `run:/<MLflow run id>` (the server resolves it to the times the run recorded)
 * over the bucket and folder the run read; a run over a label reads that label
 * (its own scope). Null for a run that read no bucket view (an MLflow run's
 * artifacts, no input) or has no MLflow run id.
 */
export function runCredentialRequest(run: IRun): IViewCredentialCreate | null {
  const input = run.input_spec;
  const description = trans.__('run %1 (%2)', run.id, run.transform);
  if (input.type === 'label') {
    return {
      view: `label:/${input.label}`,
      expires: SIDEBAR_EXPIRES,
      description
    };
  }
  let bucket: string;
  let prefix: string;
  if (input.type === 'view') {
    bucket = input.bucket;
    prefix = input.prefix;
  } else if (input.type === 'infinsnap' || input.type === 'infinslice') {
    bucket = input.bucketname;
    prefix = input.prefix;
  } else {
    return null;
  }
  if (!bucket || !run.mlflow_run_id) {
    return null;
  }
  const body: IViewCredentialCreate = {
    view: `run:/${run.mlflow_run_id}`,
    bucket,
    expires: SIDEBAR_EXPIRES,
    description
  };
  if (prefix) {
    body.prefix = prefix;
  }
  return body;
}

function CopyField(props: {
  label: string;
  value: string;
  name: string;
}): JSX.Element {
  return (
    <div className="jp-Infinstor-copyField">
      <span className="jp-Infinstor-copyLabel">{props.label}</span>
      <code data-testid={`othertools-${props.name}`}>{props.value}</code>
      <button
        className="jp-Infinstor-iconButton"
        title={trans.__('Copy %1', props.label)}
        aria-label={trans.__('Copy %1', props.label)}
        onClick={() => Clipboard.copyToSystem(props.value)}
      >
        <copyIcon.react tag="span" className="jp-Infinstor-icon" />
      </button>
    </div>
  );
}

function OtherTools(props: {
  cred: IIssuedViewCredential;
  snippets: IToolSnippet[];
  initial: ToolId;
  onChoose: (id: ToolId) => void;
}): JSX.Element {
  const { cred, snippets } = props;
  const [chosen, setChosen] = React.useState<ToolId>(props.initial);
  const snippet = snippets.find(s => s.id === chosen) ?? snippets[0];
  const view = cred.view;
  const where = view.bucket
    ? `s3://${view.bucket}/${view.prefix}`
    : trans.__('every indexed bucket');
  return (
    <div className="jp-Infinstor-otherTools" data-testid="othertools">
      <p>
        {trans.__(
          'Any S3 client reads %1 %2 through this endpoint, with unchanged bucket names and keys.',
          where,
          view.display
        )}
      </p>
      <CopyField
        label={trans.__('Endpoint')}
        value={cred.endpoint_url}
        name="endpoint"
      />
      <CopyField
        label={trans.__('Access key id')}
        value={cred.aws_access_key_id}
        name="key"
      />
      <CopyField
        label={trans.__('Secret')}
        value={cred.aws_secret_access_key}
        name="secret"
      />
      <p className="jp-Infinstor-hint">
        {trans.__(
          'Read-only; expires %1. The secret is shown only now. Revoke it in View Credentials (All credentials…) or with: infinstor-jlab endpoint credentials --revoke %2',
          cred.expires ?? trans.__('never'),
          cred.aws_access_key_id
        )}
      </p>
      <div
        className="jp-Infinstor-toolTabs"
        role="tablist"
        aria-label={trans.__('Client')}
      >
        {snippets.map(s => (
          <button
            key={s.id}
            role="tab"
            aria-selected={s.id === snippet.id}
            className={`jp-Infinstor-toolTab ${s.id === snippet.id ? 'jp-mod-active' : ''}`}
            data-tool={s.id}
            onClick={() => {
              setChosen(s.id);
              props.onChoose(s.id);
            }}
          >
            {s.title}
          </button>
        ))}
      </div>
      <div className="jp-Infinstor-snippet">
        <button
          className="jp-Infinstor-iconButton"
          title={trans.__('Copy the %1 snippet', snippet.title)}
          aria-label={trans.__('Copy snippet')}
          onClick={() => Clipboard.copyToSystem(snippet.code)}
        >
          <copyIcon.react tag="span" className="jp-Infinstor-icon" />
        </button>
        <pre data-testid="othertools-snippet">{snippet.code}</pre>
      </div>
      {snippet.cell !== snippet.code && (
        <p className="jp-Infinstor-hint">
          {trans.__(
            'Insert code adds a %1 cell that writes this profile with aws configure set.',
            '%%bash'
          )}
        </p>
      )}
    </div>
  );
}

/** The dialog's body; its value is the chosen client. */
class OtherToolsBody extends ReactWidget implements Dialog.IBodyWidget<ToolId> {
  constructor(
    private readonly _cred: IIssuedViewCredential,
    private readonly _snippets: IToolSnippet[],
    private _chosen: ToolId
  ) {
    super();
    this.addClass('jp-Infinstor-dialog');
  }

  getValue(): ToolId {
    return this._chosen;
  }

  render(): JSX.Element {
    return (
      <OtherTools
        cred={this._cred}
        snippets={this._snippets}
        initial={this._chosen}
        onChoose={id => {
          this._chosen = id;
        }}
      />
    );
  }
}

/**
 * Issue a credential for the sidebar's view and show the endpoint, the
 * credential and a snippet per client; *Insert code* puts the chosen one into
 * the notebook. Resolves to the credential (null when none was issued).
 */
export async function openOtherToolsDialog(
  model: InfinstorModel,
  actions: InfinstorActions
): Promise<IIssuedViewCredential | null> {
  const body = credentialRequest(model);
  if (!body) {
    await showDialog({
      title: trans.__('No view to share'),
      body: trans.__(
        'Choose a bucket (and, for a label view, a label) first: a credential reaches exactly one view.'
      ),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  return issueAndShow(model.client, actions, body, {
    bucket: model.bucket ?? '',
    prefix: model.prefix
  });
}

/**
 * The same dialog for a transform run's input view (`run:/<MLflow run id>`, see
 * {@link runCredentialRequest}), from the run's entry in the Transforms section.
 */
export async function openRunOtherToolsDialog(
  client: InfinstorClient,
  actions: InfinstorActions,
  run: IRun
): Promise<IIssuedViewCredential | null> {
  const body = runCredentialRequest(run);
  if (!body) {
    await showDialog({
      title: trans.__('No view to share'),
      body: trans.__(
        'Run %1 read no bucket view (or has no MLflow run id), so no credential can name its input.',
        run.id
      ),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  return issueAndShow(client, actions, body, {
    bucket: body.bucket ?? '',
    prefix: body.prefix ?? ''
  });
}

async function issueAndShow(
  client: InfinstorClient,
  actions: InfinstorActions,
  body: IViewCredentialCreate,
  where: { bucket: string; prefix: string }
): Promise<IIssuedViewCredential | null> {
  // A view after the bucket's last sync is read again from S3 first.
  const pending = Notification.emit(
    trans.__('Issuing a credential for %1…', body.view),
    'in-progress',
    { autoClose: false }
  );
  let cred: IIssuedViewCredential;
  try {
    cred = await client
      .issueViewCredential(body)
      .finally(() => Notification.dismiss(pending));
  } catch (e) {
    await showDialog({
      title: trans.__('Could not issue a credential for this view'),
      body: errorMessage(e),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  const snippets = toolSnippets(
    snippetContext(cred, where.bucket, where.prefix)
  );
  const result = await showDialog({
    title: trans.__('Use from other tools'),
    body: new OtherToolsBody(cred, snippets, 'pandas'),
    buttons: [
      Dialog.cancelButton({ label: trans.__('Close') }),
      Dialog.createButton({
        label: trans.__('All credentials…'),
        caption: trans.__(
          'List every view credential (key, view, expiry, state) and revoke one, in a tab'
        ),
        actions: [ALL_CREDENTIALS]
      }),
      Dialog.okButton({ label: trans.__('Insert code') })
    ]
  });
  if (result.button.actions.includes(ALL_CREDENTIALS)) {
    void actions.app.commands.execute(CommandIDs.viewCredentials);
  } else if (result.button.accept && result.value) {
    const chosen = snippets.find(s => s.id === result.value);
    if (chosen) {
      actions.insertText(chosen.cell);
    }
  }
  return cred;
}
