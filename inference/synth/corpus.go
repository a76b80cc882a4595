package synth

// corpus is the text the synthetic tokenizer's first merges are learned
// from, so common English fragments become single tokens as in a real
// tokenizer. It was written for this package.
const corpus = `Once upon a time there was a small town by the sea. The people of the town
woke early, opened their shops and talked about the weather. Children ran to
school along the harbour, and the fishermen pulled their boats onto the sand.
In the evening the lights came on one by one, and the smell of bread filled the
streets. Nobody in the town thought that anything would ever change.

The model reads the question, thinks about the answer and then writes it down.
A good answer is short, correct and polite. If the question is not clear, the
assistant should ask what the user means. Numbers such as 12, 256 and 2048 are
common in technical text, and so are words like memory, thread, request, server,
latency, throughput, adapter, token, layer, weight and gradient.

She said: "I will be there at 10 o'clock, and I'll bring the maps." He didn't
answer; he was already looking at the clouds, which were moving fast from the
west. They're going to need a bigger boat, we've said that before, haven't we?
What is the capital of France? Paris is the capital of France. What is two plus
two? Two plus two is four. Write a function that returns the sum of a list.
def total(values):
    return sum(values)
for i in range(10):
    print(i * i)
`
