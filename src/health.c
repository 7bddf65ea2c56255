/* health: not written yet */
