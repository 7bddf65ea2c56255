/* net: not written yet */
