//! End-to-end suite against a real cluster; see issue "Delivery". Empty until the operator exists.
