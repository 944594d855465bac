package dev.stockade.it;

import dev.stockade.conformance.ErrorTextContract;

/** The conformance kit's {@link ErrorTextContract} against runsc: host-side failures answered without host details. */
class RunscErrorTextIT extends ErrorTextContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
