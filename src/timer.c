/* timer: not written yet */
