/* SPDX-License-Identifier: MIT */
#ifndef CKPT_CRC32C_H
#define CKPT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), continuing from crc (0 to start). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
