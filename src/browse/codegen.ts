/**
 * Python code that reads exactly what the sidebar shows, through the
 * time-travel boto3 API (`infinstor_jlab.infin_boto3`).
 */
import { IViewParams } from '../api/types';

/** A Python string literal (single-quoted) holding exactly `text`. */
export function pyString(text: string): string {
  let out = "'";
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') {
      out += '\\\\';
    } else if (ch === "'") {
      out += "\\'";
    } else if (ch === '\n') {
      out += '\\n';
    } else if (ch === '\r') {
      out += '\\r';
    } else if (ch === '\t') {
      out += '\\t';
    } else if (code < 0x20 || code === 0x7f) {
      out += `\\x${code.toString(16).padStart(2, '0')}`;
    } else if (code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16)}`;
    } else {
      out += ch;
    }
  }
  return `${out}'`;
}

/** The keyword argument of `infin_boto3.client(...)` that selects the view. */
export function viewArgument(view: IViewParams): string {
  if (view.label) {
    return `label=${pyString(view.label.replace(/^label:\//, ''))}`;
  }
  if (view.slice) {
    return `slice=${pyString(view.slice)}`;
  }
  if (view.at) {
    return `at=${pyString(view.at)}`;
  }
  return '';
}

function header(view: IViewParams, display?: string): string[] {
  const comment = display ? `  # ${display.replace(/\s+/g, ' ')}` : '';
  return [
    'from infinstor_jlab import infin_boto3',
    '',
    `client = infin_boto3.client(${viewArgument(view)})${comment}`
  ];
}

/** Code that reads one object as the view shows it. */
export function objectCode(
  bucket: string,
  key: string,
  view: IViewParams,
  display?: string
): string {
  return [
    ...header(view, display),
    `obj = client.get_object(Bucket=${pyString(bucket)}, Key=${pyString(key)})`,
    "data = obj['Body'].read()"
  ].join('\n');
}

/** Code that lists every object under a folder (recursively) as the view shows it. */
export function folderCode(
  bucket: string,
  prefix: string,
  view: IViewParams,
  display?: string
): string {
  return [
    ...header(view, display),
    "paginator = client.get_paginator('list_objects_v2')",
    'keys = []',
    `for page in paginator.paginate(Bucket=${pyString(bucket)}, Prefix=${pyString(prefix)}):`,
    "    for obj in page.get('Contents', []):",
    "        keys.append(obj['Key'])",
    "print(len(keys), 'objects')"
  ].join('\n');
}

/** Code that reads one exact version of an object. */
export function versionCode(
  bucket: string,
  key: string,
  versionId: string
): string {
  return [
    'from infinstor_jlab import infin_boto3',
    '',
    'client = infin_boto3.client()',
    'obj = client.get_object(',
    `    Bucket=${pyString(bucket)}, Key=${pyString(key)}, VersionId=${pyString(versionId)}`,
    ')',
    "data = obj['Body'].read()"
  ].join('\n');
}
