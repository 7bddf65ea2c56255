/* buf: not written yet */
