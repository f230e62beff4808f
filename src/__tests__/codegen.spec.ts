import {
  folderCode,
  objectCode,
  pyString,
  versionCode,
  viewArgument
} from '../browse/codegen';
import { parseCsv } from '../browse/csv';
import { VERSION, versionsMatch } from '../version';

describe('pyString', () => {
  it('quotes and escapes exactly', () => {
    expect(pyString('plain/key.csv')).toBe("'plain/key.csv'");
    expect(pyString("it's")).toBe("'it\\'s'");
    expect(pyString('a\\b')).toBe("'a\\\\b'");
    expect(pyString('line\nbreak\ttab')).toBe("'line\\nbreak\\ttab'");
    expect(pyString('\u0001')).toBe("'\\x01'");
    expect(pyString('naïve 文件 😀')).toBe("'naïve 文件 😀'");
  });
});

describe('insert code', () => {
  it('reads one object at a snapshot', () => {
    expect(objectCode('b', 'tables/iris.csv', { at: 'tm20261120100000' })).toBe(
      [
        'from infinstor_jlab import infin_boto3',
        '',
        "client = infin_boto3.client(at='tm20261120100000')",
        "obj = client.get_object(Bucket='b', Key='tables/iris.csv')",
        "data = obj['Body'].read()"
      ].join('\n')
    );
  });

  it('lists a folder with a paginator, for a slice', () => {
    const code = folderCode(
      'b',
      'flowers/',
      { slice: 'tmA-tmB' },
      'arrivals from A to B'
    );
    expect(code).toContain(
      "client = infin_boto3.client(slice='tmA-tmB')  # arrivals from A to B"
    );
    expect(code).toContain(
      "paginator = client.get_paginator('list_objects_v2')"
    );
    expect(code).toContain(
      "for page in paginator.paginate(Bucket='b', Prefix='flowers/'):"
    );
  });

  it('names a label without its label:/ prefix, and one exact version', () => {
    expect(viewArgument({ label: 'label:/flowers-v1' })).toBe(
      "label='flowers-v1'"
    );
    expect(viewArgument({})).toBe('');
    expect(versionCode('b', 'k', 'v1')).toContain(
      "Bucket='b', Key='k', VersionId='v1'"
    );
  });
});

describe('parseCsv', () => {
  it('reads quoted fields, doubled quotes and CRLF', () => {
    const table = parseCsv('a,"b,c","say ""hi"""\r\n1,2,3\r\n');
    expect(table.rows).toEqual([
      ['a', 'b,c', 'say "hi"'],
      ['1', '2', '3']
    ]);
    expect(table.more).toBe(false);
  });

  it('keeps newlines inside quotes and stops at maxRows', () => {
    const table = parseCsv('x\n"multi\nline"\n3\n4\n', 2);
    expect(table.rows).toEqual([['x'], ['multi\nline']]);
    expect(table.more).toBe(true);
  });

  it('reads TSV', () => {
    expect(parseCsv('a\tb\n1\t2', 10, '\t').rows).toEqual([
      ['a', 'b'],
      ['1', '2']
    ]);
  });
});

// Jest runs in Node; the test tsconfig does not include Node's types.
declare const require: (path: string) => any;

describe('version', () => {
  it("equals package.json's version", () => {
    const pkg = require('../../package.json');
    expect(VERSION).toBe(pkg.version);
  });

  it('matches the server version, ignoring dev suffixes', () => {
    expect(versionsMatch('0.1.0', '0.1.0')).toBe(true);
    expect(versionsMatch('0.1.0.dev0', '0.1.0')).toBe(true);
    expect(versionsMatch('0.2.0', '0.1.0')).toBe(false);
    expect(versionsMatch('dev', '0.1.0')).toBe(false);
  });
});
