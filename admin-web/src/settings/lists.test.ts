import { describe, expect, it } from 'vitest';
import { formatGroupRoles, parseGroupRoles, parseTargets, splitList } from './lists';

describe('lists', () => {
  it('splits comma and line separated lists', () => {
    expect(splitList(' acme.example, ,b.example\nc ')).toEqual(['acme.example', 'b.example', 'c']);
  });

  it('reads group → roles lines and writes them back', () => {
    const { map, errors } = parseGroupRoles('eng: member\naudit: auditor, viewer\n\ncn=ops,dc=x: admin\neng: viewer');
    expect(errors).toEqual([]);
    expect(map).toEqual({
      eng: { roles: ['member', 'viewer'] },
      audit: { roles: ['auditor', 'viewer'] },
      'cn=ops,dc=x': { roles: ['admin'] },
    });
    expect(formatGroupRoles(map)).toBe('audit: auditor, viewer\ncn=ops,dc=x: admin\neng: member, viewer');
  });

  it('names the lines it cannot read', () => {
    expect(parseGroupRoles('eng\n: member\nok: a').errors).toEqual(['line 1: write “group: role, role”', 'line 2: write “group: role, role”']);
  });

  it('reads route targets', () => {
    expect(parseTargets('azure/gpt-4o\nlab/meta/llama3.1\n')).toEqual({
      targets: [{ provider: 'azure', model: 'gpt-4o' }, { provider: 'lab', model: 'meta/llama3.1' }],
      errors: [],
    });
    expect(parseTargets('nomodel/\n/x\nplain').errors).toHaveLength(3);
  });
});
