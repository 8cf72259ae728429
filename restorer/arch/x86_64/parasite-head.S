/* SPDX-License-Identifier: MIT */
/*
 * Parasite entry. The engine sets %rip here, %rdi to the args and %rsp to
 * the 16-byte aligned top of the parasite stack; it regains control at the
 * int3, whose trap it recognises by %rip == export_parasite_trap + 1.
 */
	.section .head.text, "ax"
	.globl export_parasite_entry
	.hidden export_parasite_entry
export_parasite_entry:
	call	parasite_service
	.globl export_parasite_trap
	.hidden export_parasite_trap
export_parasite_trap:
	int3
	jmp	export_parasite_trap
	.section .note.GNU-stack,"",@progbits
