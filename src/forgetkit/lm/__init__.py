"""Language-model basics: the layer below training, unlearning and evaluation.

* ``models``: one loader for every model spec (bundled, tiny test model, folder, GGUF, hub)
  and one atomic save;
* ``tokenize``: the chat-template prompt, QA encoding with labels on the answer, and the two
  paddings (right for training, left with position ids for reads);
* ``generate``: the one batched greedy generation routine;
* ``scoring``: answer log-probabilities, summed for losses or read teacher-forced;
* ``layers`` and ``activations``: where the decoder blocks are, and reading the residual
  stream at the last prompt token or at the blocks' outputs;
* ``text`` and ``refusals``: text folding, numbers, ROUGE recall, and the refusal phrases.

Nothing here imports the rest of forgetkit (above ``errors``, ``registry`` and ``io``).
"""
