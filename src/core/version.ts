/** The version of Oz: `oz --version`, and what a worker reports when it claims (`oz worker list`). */
export const OZ_VERSION = '0.1.0';
