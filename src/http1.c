/* http1: not written yet */
