// Where the user writes: the message, the model for it, send and cancel.
import { useState, type FormEvent, type KeyboardEvent } from 'react';
import { ModelPicker } from './pickers';

interface ComposerProps {
  running: boolean;
  disabled?: boolean;
  model: string;
  onModel(model: string): void;
  onSend(text: string): void;
  onCancel(): void;
  children?: React.ReactNode;
}

export function Composer({ running, disabled, model, onModel, onSend, onCancel, children }: ComposerProps) {
  const [text, setText] = useState('');
  const submit = (event?: FormEvent) => {
    event?.preventDefault();
    const content = text.trim();
    if (!content || running) return;
    onSend(content);
    setText('');
  };
  const onKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      submit();
    }
  };
  return (
    <form className="composer" onSubmit={submit} aria-label="Write a message">
      <div className="field">
        <label htmlFor="composer-text">Message</label>
        <textarea
          id="composer-text"
          name="message"
          rows={3}
          value={text}
          disabled={disabled}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKey}
          placeholder="Ask anything. Enter sends, Shift+Enter starts a new line."
        />
      </div>
      <div className="composer-row">
        {children}
        <ModelPicker value={model} onChange={onModel} />
        {running
          ? <button type="button" className="danger" onClick={onCancel}>Stop</button>
          : <button type="submit" className="primary" disabled={disabled || !text.trim()}>Send</button>}
      </div>
    </form>
  );
}
