/**
 * The translation bundle of the sidebar's strings (domain `infinstor_jlab`).
 *
 * Views use `trans.__('... %1 ...', value)`; the plugin installs the
 * application's translator at activation, and until then (and in tests) the
 * strings stay in English.
 */
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

const current: { trans: TranslationBundle } = {
  trans: nullTranslator.load('infinstor_jlab')
};

/** Use the application's translator for every string shown from now on. */
export function setTranslator(translator: ITranslator | null): void {
  current.trans = (translator ?? nullTranslator).load('infinstor_jlab');
}

/** Forwards to the current bundle, so modules can import it once. */
export const trans = {
  __: (msgid: string, ...args: any[]): string =>
    current.trans.__(msgid, ...args),
  _n: (msgid: string, msgidPlural: string, n: number, ...args: any[]): string =>
    current.trans._n(msgid, msgidPlural, n, ...args)
};
