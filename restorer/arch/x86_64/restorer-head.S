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
 * void restorer_sigreturn(unsigned long frame, const void *trap_action):
 * the int3 hands the task to the engine, which continues it into the
 * system calls below. The trap, taken with SIGTRAP blocked, reset the
 * SIGTRAP action to SIG_DFL (force_sig_info_to_task), so the saved one
 * is installed again first (trap_action, or nothing when NULL); then
 * rt_sigreturn, with %rsp just past the frame's return address, as after
 * a handler's ret.
 */
	.text
	.globl restorer_sigreturn
	.hidden restorer_sigreturn
restorer_sigreturn:
	.globl export_restorer_trap
	.hidden export_restorer_trap
export_restorer_trap:
	int3
	movq	%rdi, %r12
	testq	%rsi, %rsi
	jz	1f
	movl	$5, %edi		/* SIGTRAP */
	xorl	%edx, %edx
	movl	$8, %r10d
	movl	$13, %eax		/* __NR_rt_sigaction */
	syscall
1:	leaq	8(%r12), %rsp
	movl	$15, %eax		/* __NR_rt_sigreturn */
	syscall
	ud2

/*
 * long restorer_clone_thread(struct clone_args *ca, unsigned long size,
 *			      void (*fn)(void *), void *arg):
 * clone3 for a thread. The child starts on the stack clone3 gave it, with
 * the parent's registers, so fn and arg travel in %r8/%r9 (argument
 * registers the parent may lose; the syscall itself clobbers only %rcx
 * and %r11). fn never returns. The parent gets the new TID or -errno.
 */
	.globl restorer_clone_thread
	.hidden restorer_clone_thread
restorer_clone_thread:
	movq	%rdx, %r8
	movq	%rcx, %r9
	movl	$435, %eax		/* __NR_clone3 */
	syscall
	testq	%rax, %rax
	jnz	1f
	xorl	%ebp, %ebp
	movq	%r9, %rdi
	call	*%r8
	ud2
1:	ret

/* A bare syscall the engine points the task at to run one system call. */
	.globl export_restorer_syscall
	.hidden export_restorer_syscall
export_restorer_syscall:
	syscall
	ud2
	.section .note.GNU-stack,"",@progbits
