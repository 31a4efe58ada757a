"""The official OpenAI Python SDK against CodexContinue's OpenAI-compatible API.

Usage: openai_client.py BASE_URL API_KEY MODE

MODE `main`: list models, a whole and a streamed chat completion through the alias
`team`, embeddings as floats and as base64, a wrong key and bad requests.
MODE `rate-limit`: calls until the server's rate limit answers, without retries.

Each check prints one `ok: ...` line; any failure raises (non-zero exit).
"""

import json
import sys

import openai
from openai import OpenAI


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def main_checks(base_url, key):
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0)

    ids = [model.id for model in client.models.list()]
    check("team" in ids and "minilm-l6" in ids, f"models listed: {ids}")
    check(client.models.retrieve("team").id == "team", "model retrieved")

    reply = client.chat.completions.create(
        model="team",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello there"},
        ],
        max_tokens=50,
        temperature=0.2,
    )
    choice = reply.choices[0]
    check(choice.message.content == "Echo: Hello there", f"whole reply: {choice.message.content!r}")
    check(choice.finish_reason == "stop", "finish reason stop")
    check(reply.object == "chat.completion" and reply.id.startswith("chatcmpl-"), "reply ids")
    check(reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
          and reply.usage.completion_tokens > 0, f"usage {reply.usage}")

    pieces, objects, finish, usage = [], set(), None, None
    stream = client.chat.completions.create(
        model="team",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Stream this please"}]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        objects.add(chunk.object)
        if chunk.choices:
            delta = chunk.choices[0].delta
            if delta.content:
                pieces.append(delta.content)
            if chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
    check(objects == {"chat.completion.chunk"}, f"chunk objects {objects}")
    check("".join(pieces) == "Echo: Stream this please", f"streamed reply: {pieces}")
    check(len(pieces) > 1, f"streamed in {len(pieces)} pieces")
    check(finish == "stop", "streamed finish reason")
    check(usage is not None and usage.completion_tokens > 0, f"streamed usage {usage}")

    tools = [{"type": "function", "function": {
        "name": "lookup", "description": "Looks a term up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]
    asked = [{"role": "user", "content": "find invoice 12"}]
    called = client.chat.completions.create(model="team", messages=asked, tools=tools, tool_choice="auto")
    call = called.choices[0].message.tool_calls[0]
    check(called.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"
          and json.loads(call.function.arguments) == {"q": "find invoice 12"},
          f"tool call {call}")
    streamed_args, streamed_name = "", None
    for chunk in client.chat.completions.create(model="team", messages=asked, tools=tools, stream=True):
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            streamed_name = piece.function.name or streamed_name
            streamed_args += piece.function.arguments or ""
    check(streamed_name == "lookup" and json.loads(streamed_args) == {"q": "find invoice 12"},
          "streamed tool call")
    answered = client.chat.completions.create(model="team", tools=tools, messages=asked + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "paid on May 3"},
    ])
    check(answered.choices[0].message.content == "Tool said: paid on May 3",
          f"answer after the tool: {answered.choices[0].message.content!r}")

    floats = client.embeddings.create(
        model="minilm-l6", input=["first text", "second text"], encoding_format="float"
    )
    check(len(floats.data) == 2 and len(floats.data[0].embedding) == 384, "float embeddings")
    packed = client.embeddings.create(model="minilm-l6", input="first text")
    same = all(abs(a - b) < 1e-6 for a, b in zip(packed.data[0].embedding, floats.data[0].embedding))
    check(len(packed.data[0].embedding) == 384 and same, "base64 embeddings equal the floats")
    check(floats.usage.prompt_tokens > 0, "embedding usage")

    try:
        OpenAI(base_url=base_url, api_key="cc_wrong", max_retries=0).models.list()
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as err:
        check(err.status_code == 401, "wrong key: AuthenticationError")

    for kwargs, param in [
        ({"n": 2}, "n"),
        ({"messages": []}, "messages"),
        ({"model": "no-such-alias"}, "model"),
        ({"temperature": 5}, "temperature"),
    ]:
        request = {"model": "team", "messages": [{"role": "user", "content": "x"}]}
        request.update(kwargs)
        try:
            client.chat.completions.create(**request)
            raise AssertionError(f"{kwargs} was accepted")
        except openai.BadRequestError as err:
            check(err.param == param, f"bad request names {param!r} ({err.param!r}: {err.message})")

    try:
        client.models.retrieve("no-such-model")
        raise AssertionError("an unknown model was found")
    except openai.NotFoundError:
        check(True, "unknown model: NotFoundError")


def rate_limit_checks(base_url, key):
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0)
    for _ in range(20):
        try:
            client.models.list()
        except openai.RateLimitError as err:
            retry_after = err.response.headers.get("retry-after")
            check(retry_after is not None and int(retry_after) >= 1,
                  f"rate limited: RateLimitError, retry-after {retry_after}")
            return
    raise AssertionError("never rate limited")


if __name__ == "__main__":
    base, api_key, mode = sys.argv[1:4]
    {"main": main_checks, "rate-limit": rate_limit_checks}[mode](base, api_key)
