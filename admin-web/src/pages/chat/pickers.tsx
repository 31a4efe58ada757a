// The profile and model choices of the composer.
import { useQuery } from '@tanstack/react-query';
import { useId } from 'react';
import { admin, chat } from '../../api/clients';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';

export function useProfiles() {
  return useQuery({ queryKey: ['profiles'], queryFn: () => chat.listProfiles({ pageSize: 100 }) });
}

/** Aliases and provider models the caller may pick (what admins can read; else the usual). */
function useModelChoices(): string[] {
  const roles = useRoles();
  const canRead = allows(roles, 'providers');
  const routes = useQuery({
    queryKey: ['routes'], enabled: canRead, queryFn: () => admin.listModelRoutes({ pageSize: 200 }),
  });
  const providers = useQuery({
    queryKey: ['providers'], enabled: canRead, queryFn: () => admin.listProviders({ pageSize: 200 }),
  });
  const choices = new Set<string>(['default']);
  for (const route of routes.data?.routes ?? []) choices.add(route.alias);
  for (const provider of providers.data?.providers ?? []) {
    for (const model of provider.models) choices.add(`${provider.name}/${model}`);
  }
  return [...choices];
}

export function ModelPicker({ value, onChange, placeholder }: { value: string; onChange(v: string): void; placeholder?: string }) {
  const id = useId();
  const choices = useModelChoices();
  return (
    <div className="field inline">
      <label htmlFor={id}>Model</label>
      <input
        id={id}
        name="model"
        list={`${id}-list`}
        value={value}
        placeholder={placeholder ?? 'profile default'}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={`${id}-hint`}
      />
      <small id={`${id}-hint`} className="visually-hidden">An alias such as default, or provider/model; empty uses the conversation’s.</small>
      <datalist id={`${id}-list`}>
        {choices.map((choice) => <option key={choice} value={choice} />)}
      </datalist>
    </div>
  );
}

export function ProfilePicker({ value, onChange }: { value: string; onChange(v: string): void }) {
  const id = useId();
  const profiles = useProfiles();
  return (
    <div className="field inline">
      <label htmlFor={id}>Profile</label>
      <select id={id} name="profile" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">Automatic</option>
        {profiles.data?.profiles.map((p) => <option key={p.id} value={p.id}>{p.displayName || p.id}</option>)}
      </select>
    </div>
  );
}
