import { Dialog, showDialog } from '@jupyterlab/apputils';

import { errorMessage } from './errors';
import { trans } from './i18n';

/** What a confirm-then-delete dialog says and does. */
export interface IDeleteRequest {
  /** The dialog's title, naming the thing (e.g. "Delete label flowers?"). */
  title: string;
  /** What goes and what stays. */
  body: string;
  /** The name shown if deleting fails. */
  name: string;
  /** Deletes the thing; its error's message is shown to the user. */
  remove: () => Promise<void>;
}

/**
 * Asks before deleting (a warn button, Cancel first), then deletes; a failure is shown in a
 * dialog rather than thrown. Resolves to whether the thing was deleted.
 */
export async function deleteWithConfirm(
  request: IDeleteRequest
): Promise<boolean> {
  const result = await showDialog({
    title: request.title,
    body: request.body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Delete') })
    ]
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await request.remove();
    return true;
  } catch (e) {
    await showDialog({
      title: trans.__('Could not delete %1', request.name),
      body: errorMessage(e),
      buttons: [Dialog.okButton()]
    });
    return false;
  }
}
