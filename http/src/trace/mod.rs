//! W3C Trace Context and W3C Baggage (to be written).
