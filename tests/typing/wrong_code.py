"""Mistakes mypy must report (``tests/test_typing.py`` expects each line's
error): proof that the check in ``.ci/run`` can fail. Not run, not collected."""

import jgd

jgd.adam(b9=0.1)  # E: unexpected keyword argument
jgd.adam(1e-3, 0.9, 0.999, 1e-8, 0.0, None, True)  # E: nesterov is keyword-only
jgd.sgd(0.1, momentum="high")  # E: momentum is a number
opt = jgd.adam(1e-3)
opt.learning_rate = 3e-4  # E: frozen; use opt.replace(learning_rate=3e-4)
