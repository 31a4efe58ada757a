// A modal dialog on the native <dialog> element: focus is trapped and Escape closes it.
import { useEffect, useId, useRef, type ReactNode } from 'react';

interface DialogProps {
  title: string;
  open: boolean;
  onClose(): void;
  children: ReactNode;
  /** A side drawer rather than a centred box. */
  drawer?: boolean;
}

export function Dialog({ title, open, onClose, children, drawer }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} className={drawer ? 'drawer' : 'modal'} aria-labelledby={titleId} onClose={onClose}>
      <header className="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" className="ghost" onClick={onClose} aria-label="Close">×</button>
      </header>
      {open && <div className="dialog-body">{children}</div>}
    </dialog>
  );
}
