// A conversation not started yet: pick a profile and a model, write the first message.
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { chat } from '../../api/clients';
import { problemOf, type ApiProblem } from '../../api/errors';
import { Problem } from '../../components/forms';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';
import { Composer } from './Composer';
import { ProfilePicker } from './pickers';
import type { ReplyRunner } from './useReply';

export function NewConversation({ reply }: { reply: ReplyRunner }) {
  const navigate = useNavigate();
  const canWrite = allows(useRoles(), 'chat.write');
  const [profile, setProfile] = useState('');
  const [model, setModel] = useState('');
  const [problem, setProblem] = useState<ApiProblem>();
  const start = async (text: string) => {
    setProblem(undefined);
    try {
      const { conversation } = await chat.createConversation({ profile, model });
      if (!conversation) return;
      navigate(`/chat/${conversation.id}`);
      void reply.send(conversation.id, text, model);
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <>
      <h2>New conversation</h2>
      {!canWrite && <p className="notice">Your role may read conversations but not start them.</p>}
      <Problem problem={problem} />
      <Composer running={false} disabled={!canWrite} model={model} onModel={setModel} onSend={start} onCancel={() => {}}>
        <ProfilePicker value={profile} onChange={setProfile} />
      </Composer>
    </>
  );
}
