/* backend: not written yet */
