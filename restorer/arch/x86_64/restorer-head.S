/* SPDX-License-Identifier: MIT */
/*
 * Restorer entry: %rdi = args, %rsp = top of the restorer stack (16-byte
 * aligned). restorer_main never returns; it ends in restorer_sigreturn.
 */
	.section .head.text, "ax"
	.globl export_restorer_entry
	.hidden export_restorer_entry
export_restorer_entry:
	call	restorer_main
	ud2

/*
 * void restorer_sigreturn(unsigned long frame): the int3 hands the task to
 * the engine, which continues it into the rt_sigreturn below. %rsp must
 * point just past the frame's return address, as after a handler's ret.
 */
	.text
	.globl restorer_sigreturn
	.hidden restorer_sigreturn
restorer_sigreturn:
	.globl export_restorer_trap
	.hidden export_restorer_trap
export_restorer_trap:
	int3
	leaq	8(%rdi), %rsp
	movl	$15, %eax		/* __NR_rt_sigreturn */
	syscall
	ud2

/* A bare syscall the engine points the task at to run one system call. */
	.globl export_restorer_syscall
	.hidden export_restorer_syscall
export_restorer_syscall:
	syscall
	ud2
	.section .note.GNU-stack,"",@progbits
