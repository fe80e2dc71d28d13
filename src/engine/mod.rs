//! Local campaign engine: phases 0 to 3 driven against a git checkout.
