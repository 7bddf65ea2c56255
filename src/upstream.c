/* upstream: not written yet */
