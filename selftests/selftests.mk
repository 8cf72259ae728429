# SPDX-License-Identifier: MIT
selftests:
run_tests: ckpt selftests
	@echo "selftests: 0 passed, 0 failed"
.PHONY: selftests run_tests
