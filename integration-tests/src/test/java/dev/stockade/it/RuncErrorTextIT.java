package dev.stockade.it;

import dev.stockade.conformance.ErrorTextContract;

/** The conformance kit's {@link ErrorTextContract} against runc: host-side failures answered without host details. */
class RuncErrorTextIT extends ErrorTextContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
