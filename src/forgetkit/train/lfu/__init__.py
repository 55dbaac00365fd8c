"""Loss terms ``lfu-lora``, ``lfu-reps`` and ``lfu-sam``: Learning from the Undesirable (LfU paper).

    l_LfU = l_SFT(theta) + lambda * l_cons                                          (Eq. 6)
    l_cons = mean over layers l, answer tokens t of || detach(h_l,t) - h'_l,t ||^2    (Eq. 5)

``h'`` are the representations of the same batch under an *auxiliary* model pushed one
normalised gradient-ascent step along grad l_SFT (Eq. 2):

* ``lfu-lora``: the trainable LoRA factors shifted, theta_aux = theta_LoRA + alpha g/||g||;
* ``lfu-reps``: a steering vector d_l added to every representation h_l, d = alpha g/||g||
  with g_l = d l_SFT / d d_l at d = 0, i.e. the CE gradient at h_l summed over tokens.

The squared distance is averaged over hidden units too (the paper's "MSE"); Eq. 5 read
literally would multiply it by the hidden size. ``lfu_consistency: logits`` swaps Eq. 5 for
the logit-level KL of Eq. 7 (Table 6e). ``lfu-sam`` is the parameter-level design of Table 6b:
plain CE evaluated at the LoRA weights shifted by the same ascent step, no consistency.

One backward per step (DDP, FSDP and DeepSpeed under accelerate need it). The reference code
spends a forward and a backward on g before the real step (3 forward + 2 backward). Here:

* the auxiliary copy of the batch is an extra input group (``lfu_``) of the trainer's one
  shared forward, and hooks perturb only its tokens, so its backward is part of the single
  backward of the step;
* g is the CE gradient of the *previous* micro-step (``lfu_direction: prev-ce``), captured
  during that step's backward from the clean tokens only: for RepS the gradient at the clean
  representations, for LoRA the factor gradients rebuilt from the clean tokens' activations
  (dA = g_u^T x, dB = g_v^T u). No ``autograd.grad`` call, no second backward. Cheaper
  alternatives: ``prev-total`` reads the synchronised gradient of the whole loss from the
  LoRA weights before the optimizer step (DDP only: DeepSpeed keeps no ``.grad``), and
  ``random`` takes a random direction of the same norm (no ascent: an ablation).

``lfu_direction: same-step`` is the reference the others are measured against: the paper's
own g, the CE gradient of the *same* step, obtained its way. Before the shared forward, an
extra forward of the clean batch and ``torch.autograd.grad`` of its CE (w.r.t. the LoRA
factors, or the representations for RepS) give g; ``.grad`` and DDP's gradient hooks are not
touched, and the step's own backward stays the only one that reaches the weights. It costs
that extra forward and backward, and is refused under DeepSpeed and FSDP.

Which tokens the auxiliary model runs on (``lfu_span``):

* ``full``: the whole sequence is copied, as an extra row per example (Algorithm 1: the
  auxiliary LoRA acts on prompt and answer). About twice the cost of SFT.
* ``answer``: only the answer tokens are perturbed (Algorithm 2 steers h_l,t for the output
  tokens t = 1..T). Their copies are appended to the clean row itself and attend to the
  clean prompt through a 4-D attention mask, so the prompt is computed once. Exact for RepS
  (the prompt is not steered); for LoRA it means an auxiliary adapter that acts on the
  answer tokens only. The default for ``lfu-reps``.

The hooks are installed at the first loss call, when the prepared (peft) model exists; the
first step is plain SFT (no copy, l_cons = 0). LoRA perturbs from step 2 on (the first
step's ``.grad`` is exactly the CE gradient), RepS, and LoRA where no ``.grad`` is kept
(DeepSpeed), from step 3 on. ``same-step`` needs no history: it installs its hooks at the
first training forward of the prepared model and perturbs from step 1 on.

Files: ``math.py`` (Eq. 2, 5, 7 and the layer and token choices), ``auxiliary.py`` (the
shared machinery of the perturbed copy), ``auxiliaries.py`` (LoRA and RepS), ``terms.py``
(the loss terms, their options and registration).
"""

from forgetkit.train.lfu.auxiliaries import LoRAAuxiliary, RepSAuxiliary
from forgetkit.train.lfu.auxiliary import Auxiliary
from forgetkit.train.lfu.math import (
    DIRECTIONS,
    LAYER_GROUPS,
    PREFIX,
    SPANS,
    answer_span,
    ascent_step,
    consistency,
    layer_indices,
    logit_consistency,
)
from forgetkit.train.lfu.terms import (
    LfUConsistency,
    LfUOptions,
    SharpnessAwareCE,
    refuse_sharded_same_step,
)

__all__ = ["DIRECTIONS", "LAYER_GROUPS", "PREFIX", "SPANS", "Auxiliary", "LfUConsistency",
           "LfUOptions", "LoRAAuxiliary", "RepSAuxiliary", "SharpnessAwareCE", "answer_span",
           "ascent_step", "consistency", "layer_indices", "logit_consistency",
           "refuse_sharded_same_step"]
