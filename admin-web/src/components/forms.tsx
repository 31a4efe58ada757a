// Form pieces that show the server's complaint next to the field it names.
import { useId, type InputHTMLAttributes, type ReactNode, type SelectHTMLAttributes } from 'react';
import { concerns, describe, type ApiProblem } from '../api/errors';

interface FieldProps {
  label: string;
  /** The request field this input fills (e.g. `budget.token_limit`), to show its error. */
  field?: string;
  problem?: ApiProblem;
  hint?: ReactNode;
}

function messageFor(problem: ApiProblem | undefined, field: string | undefined): string | undefined {
  return field && concerns(problem, field) ? problem?.message : undefined;
}

export function TextField({ label, field, problem, hint, ...input }: FieldProps & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  const error = messageFor(problem, field);
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...input} />
      {hint && <small id={`${id}-hint`} className="hint">{hint}</small>}
      {error && <small id={`${id}-error`} className="field-error">{error}</small>}
    </div>
  );
}

export function SelectField({ label, field, problem, hint, children, ...select }: FieldProps & SelectHTMLAttributes<HTMLSelectElement>) {
  const id = useId();
  const error = messageFor(problem, field);
  const describedBy = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} aria-invalid={error ? true : undefined} aria-describedby={describedBy} {...select}>{children}</select>
      {hint && <small id={`${id}-hint`} className="hint">{hint}</small>}
      {error && <small id={`${id}-error`} className="field-error">{error}</small>}
    </div>
  );
}

export function CheckField({ label, ...input }: { label: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  return (
    <div className="check">
      <input id={id} type="checkbox" {...input} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/** A failed call, for the whole form or page. */
export function Problem({ problem, fields = [] }: { problem?: ApiProblem; fields?: string[] }) {
  if (!problem) return null;
  // A problem already shown next to its field is not repeated here.
  if (fields.some((field) => concerns(problem, field))) {
    return <p className="problem" role="alert">Check the highlighted field.</p>;
  }
  return <p className="problem" role="alert">{describe(problem)}</p>;
}
