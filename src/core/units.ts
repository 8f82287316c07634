/** Bytes in a mebibyte: limits are configured in MiB and kept in bytes. */
export const MIB = 1024 * 1024;
