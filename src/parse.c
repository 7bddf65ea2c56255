/* parse: not written yet */
