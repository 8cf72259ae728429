// SPDX-License-Identifier: MIT
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vdso.h"

static int in_bounds(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

int vdso_symbols(const uint8_t *img, size_t len, struct vdso_sym *syms, int max)
{
	Elf64_Ehdr eh;
	uint64_t load = 0;
	int n = 0, have_load = 0;

	if (len < sizeof(eh))
		return -EINVAL;
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_bounds(len, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)) ||
	    !in_bounds(len, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr)))
		return -EINVAL;
	/* Symbol values are link addresses; the image starts at the first PT_LOAD. */
	for (int i = 0; i < eh.e_phnum && !have_load; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD) {
			load = ph.p_vaddr - ph.p_offset;
			have_load = 1;
		}
	}
	if (!have_load)
		return -EINVAL;
	for (int i = 0; i < eh.e_shnum; i++) {
		Elf64_Shdr sh, str;
		memcpy(&sh, img + eh.e_shoff + i * sizeof(sh), sizeof(sh));
		if (sh.sh_type != SHT_DYNSYM)
			continue;
		if (sh.sh_link >= eh.e_shnum || sh.sh_entsize != sizeof(Elf64_Sym) ||
		    !in_bounds(len, sh.sh_offset, sh.sh_size))
			return -EINVAL;
		memcpy(&str, img + eh.e_shoff + sh.sh_link * sizeof(str), sizeof(str));
		if (!in_bounds(len, str.sh_offset, str.sh_size))
			return -EINVAL;
		for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); k++) {
			Elf64_Sym s;
			memcpy(&s, img + sh.sh_offset + k * sizeof(s), sizeof(s));
			if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF ||
			    s.st_name >= str.sh_size)
				continue;
			const char *name = (const char *)img + str.sh_offset + s.st_name;
			size_t nlen = strnlen(name, str.sh_size - s.st_name);
			if (nlen == str.sh_size - s.st_name || nlen >= sizeof(syms[0].name) ||
			    s.st_value < load || !in_bounds(len, s.st_value - load, s.st_size))
				continue;
			if (n == max)
				return -EINVAL;
			memcpy(syms[n].name, name, nlen + 1);
			syms[n].off = s.st_value - load;
			syms[n].size = s.st_size;
			n++;
		}
		return n;
	}
	return -EINVAL;
}

const struct vdso_sym *vdso_find(const struct vdso_sym *syms, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(syms[i].name, name))
			return &syms[i];
	return NULL;
}
