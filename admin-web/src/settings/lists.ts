// Text forms of the lists and maps the settings pages edit: "a, b" lists, "group: role, role"
// lines, "provider/model" route targets.

/** "a, b,,c " → ["a", "b", "c"]. */
export function splitList(text: string): string[] {
  return text.split(/[,\n]/).map((item) => item.trim()).filter(Boolean);
}

/** One "group: role, role" line per group → the map SetIdentityProvider takes. */
export function parseGroupRoles(text: string): { map: Record<string, { roles: string[] }>; errors: string[] } {
  const map: Record<string, { roles: string[] }> = {};
  const errors: string[] = [];
  text.split('\n').forEach((line, index) => {
    if (!line.trim()) return;
    const colon = line.lastIndexOf(':');
    const group = colon > 0 ? line.slice(0, colon).trim() : '';
    const roles = colon > 0 ? splitList(line.slice(colon + 1)) : [];
    if (!group || roles.length === 0) {
      errors.push(`line ${index + 1}: write “group: role, role”`);
      return;
    }
    map[group] = { roles: [...(map[group]?.roles ?? []), ...roles] };
  });
  return { map, errors };
}

/** The map back as lines, groups in order. */
export function formatGroupRoles(map: Record<string, { roles: string[] }>): string {
  return Object.keys(map).sort().map((group) => `${group}: ${map[group]?.roles.join(', ') ?? ''}`).join('\n');
}

/** "provider/model" per line → route targets; the model may itself hold slashes. */
export function parseTargets(text: string): { targets: { provider: string; model: string }[]; errors: string[] } {
  const targets: { provider: string; model: string }[] = [];
  const errors: string[] = [];
  text.split('\n').forEach((line, index) => {
    const value = line.trim();
    if (!value) return;
    const slash = value.indexOf('/');
    if (slash <= 0 || slash === value.length - 1) {
      errors.push(`line ${index + 1}: write “provider/model”`);
      return;
    }
    targets.push({ provider: value.slice(0, slash), model: value.slice(slash + 1) });
  });
  return { targets, errors };
}
