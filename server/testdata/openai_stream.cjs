// Drives the server with the official openai Node SDK: a streamed chat call
// with usage, a plain chat call, a model listing and an error. Prints one
// JSON line with what the SDK saw. Usage: node openai_stream.cjs <baseURL> <model>
const OpenAI = require("openai");

async function main() {
  const [baseURL, model] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey: "test-key", maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let content = "";
  let finish = null;
  let usage = null;
  let role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) content += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  const plain = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  let errorStatus = 0;
  let errorCode = null;
  try {
    await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
  } catch (e) {
    errorStatus = e.status;
    errorCode = e.code;
  }
  console.log(JSON.stringify({ role, content, finish, usage, plain: plain.choices[0].message.content,
    plainFinish: plain.choices[0].finish_reason, models, errorStatus, errorCode }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
