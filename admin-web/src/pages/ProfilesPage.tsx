// Domain profiles: the instructions, default model, PHI policy and plugins of each field
// of work. Changing a built-in profile overrides it; deleting restores it.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { admin, chat } from '../api/clients';
import { problemOf } from '../api/errors';
import { Problem, SelectField, TextField } from '../components/forms';
import { Loading, PageHeader } from '../components/misc';
import { PhiPolicy } from '../gen/codexcontinue/v1/common_pb.js';
import type { Profile } from '../gen/codexcontinue/v1/chat_pb.js';
import { splitList } from '../settings/lists';

const POLICIES: Record<number, string> = {
  [PhiPolicy.UNSPECIFIED]: 'the tenant’s policy',
  [PhiPolicy.ALLOW]: 'allow',
  [PhiPolicy.REDACT]: 'redact',
  [PhiPolicy.REFUSE]: 'refuse',
};

export default function ProfilesPage() {
  const queries = useQueryClient();
  const [editing, setEditing] = useState<Profile | 'new'>();
  const profiles = useQuery({ queryKey: ['profiles'], queryFn: () => chat.listProfiles({ pageSize: 200 }) });
  const refresh = () => void queries.invalidateQueries({ queryKey: ['profiles'] });
  const save = useMutation({
    mutationFn: (form: FormData) => admin.setProfile({
      profile: {
        id: String(form.get('id') ?? '').trim(),
        displayName: String(form.get('displayName') ?? '').trim(),
        description: String(form.get('description') ?? '').trim(),
        defaultModel: String(form.get('defaultModel') ?? '').trim(),
        phiPolicy: Number(form.get('phiPolicy')),
        allowedPlugins: splitList(String(form.get('plugins') ?? '')),
      },
      systemPrompt: String(form.get('systemPrompt') ?? ''),
    }),
    onSuccess: () => { setEditing(undefined); refresh(); },
  });
  const remove = useMutation({ mutationFn: (id: string) => admin.deleteProfile({ profileId: id }), onSuccess: refresh });
  const problem = save.error ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  const profile = editing === 'new' ? undefined : editing;

  return (
    <section>
      <PageHeader title="Profiles">
        <button type="button" className="primary" onClick={() => setEditing('new')}>New profile</button>
      </PageHeader>
      {profiles.isPending && <Loading what="profiles" />}
      <Problem problem={profiles.error ? problemOf(profiles.error) : undefined} />
      <Problem problem={remove.error ? problemOf(remove.error) : undefined} />
      {profiles.data && (
        <table>
          <caption className="visually-hidden">Profiles</caption>
          <thead>
            <tr>
              <th scope="col">Profile</th><th scope="col">Default model</th><th scope="col">PHI</th><th scope="col">Plugins</th>
              <th scope="col"><span className="visually-hidden">Actions</span></th>
            </tr>
          </thead>
          <tbody>
            {profiles.data.profiles.map((p) => (
              <tr key={p.id}>
                <td>{p.displayName} <small className="muted">{p.id}{p.custom ? ', custom' : ''}</small><br /><small>{p.description}</small></td>
                <td className="mono">{p.defaultModel}</td>
                <td>{POLICIES[p.phiPolicy]}</td>
                <td>{p.allowedPlugins.join(', ')}</td>
                <td className="actions">
                  <button type="button" onClick={() => setEditing(p)} aria-label={`Edit ${p.id}`}>Edit</button>
                  <button type="button" onClick={() => remove.mutate(p.id)} aria-label={`${p.custom ? 'Delete' : 'Restore'} ${p.id}`}>
                    {p.custom ? 'Delete' : 'Restore'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && (
        <form className="card" onSubmit={submit} aria-labelledby="profile-form-title" key={profile?.id ?? 'new'}>
          <h2 id="profile-form-title">{profile ? `Edit ${profile.id}` : 'New profile'}</h2>
          <div className="grid">
            <TextField label="Id" name="id" required defaultValue={profile?.id} readOnly={Boolean(profile)} field="profile.id" problem={problem} />
            <TextField label="Display name" name="displayName" defaultValue={profile?.displayName} field="profile.display_name" problem={problem} />
            <TextField label="Description" name="description" defaultValue={profile?.description} field="profile.description" problem={problem} />
            <TextField label="Default model" name="defaultModel" defaultValue={profile?.defaultModel ?? 'default'} field="profile.default_model" problem={problem} />
            <SelectField label="PHI policy" name="phiPolicy" defaultValue={String(profile?.phiPolicy ?? PhiPolicy.UNSPECIFIED)}
              field="profile.phi_policy" problem={problem}>
              {Object.entries(POLICIES).map(([k, label]) => <option key={k} value={k}>{label}</option>)}
            </SelectField>
            <TextField label="Allowed plugins" name="plugins" defaultValue={profile?.allowedPlugins.join(', ')}
              field="profile.allowed_plugins" problem={problem} hint="Plugin names, comma-separated." />
          </div>
          <div className="field">
            <label htmlFor="system-prompt">System prompt</label>
            <textarea id="system-prompt" name="systemPrompt" rows={6} required defaultValue={profile?.systemPrompt}
              aria-invalid={problem?.field === 'system_prompt' ? true : undefined} />
            {problem?.field === 'system_prompt' && <small className="field-error">{problem.message}</small>}
          </div>
          <Problem problem={problem} fields={['profile', 'system_prompt']} />
          <div className="row">
            <button type="submit" className="primary" disabled={save.isPending}>Save profile</button>
            <button type="button" onClick={() => setEditing(undefined)}>Cancel</button>
          </div>
        </form>
      )}
    </section>
  );
}
