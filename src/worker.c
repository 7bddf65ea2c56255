/* worker: not written yet */
