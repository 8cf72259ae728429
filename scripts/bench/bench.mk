# SPDX-License-Identifier: MIT
bench: ckpt
.PHONY: bench
