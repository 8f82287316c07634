/** The `PATH` of a process that inherits none: the system's binary directories, in the usual order. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
