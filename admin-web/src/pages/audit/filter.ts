// The audit page's filter form as the AuditFilter of ListAuditEvents and ExportAuditEvents.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { AuditFilterSchema, AuditOutcome, type AuditFilter } from '../../gen/codexcontinue/v1/audit_pb.js';
import { dayEnd, dayStart } from '../../api/format';

/** What the form holds, as text. */
export interface FilterForm {
  action: string;
  outcome: string;
  actor: string;
  resourceType: string;
  resourceId: string;
  from: string;
  to: string;
  phiOnly: boolean;
}

export const EMPTY_FILTER: FilterForm = {
  action: '', outcome: '', actor: '', resourceType: '', resourceId: '', from: '', to: '', phiOnly: false,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The request filter. The actor is a user id, `key:<api key id>` or `system:<job>`; a
 * bare UUID is read as a user id.
 */
export function toFilter(form: FilterForm): AuditFilter {
  const from = dayStart(form.from);
  const to = dayEnd(form.to);
  const actor = form.actor.trim();
  let kind: AuditFilter['actor'] = undefined;
  if (actor.startsWith('key:')) {
    kind = { $typeName: 'codexcontinue.v1.Actor', kind: { case: 'apiKeyId', value: actor.slice(4) } };
  } else if (actor.startsWith('system:')) {
    kind = { $typeName: 'codexcontinue.v1.Actor', kind: { case: 'system', value: actor.slice(7) } };
  } else if (actor) {
    kind = { $typeName: 'codexcontinue.v1.Actor', kind: { case: 'userId', value: actor.replace(/^user:/, '') } };
  }
  return create(AuditFilterSchema, {
    action: form.action.trim(),
    outcome: Number(form.outcome) || AuditOutcome.UNSPECIFIED,
    actor: kind,
    resourceType: form.resourceType.trim(),
    resourceId: form.resourceId.trim(),
    phiOnly: form.phiOnly,
    timeRange: from || to ? {
      start: from ? timestampFromDate(from) : undefined,
      end: to ? timestampFromDate(to) : undefined,
    } : undefined,
  });
}

/** True when `value` looks like an id the server keeps as a UUID. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
