//! The shape every classifier has, after linfa's `Fit` / `Predict`: parameters are fitted
//! on a labelled reference and give a fitted object that predicts query cells. linfa's
//! record types are dense numeric matrices and cannot carry sparse, gene-named cells
//! (queries are matched to the reference by gene name), so the traits take a
//! [`Dataset`] and its [`Labels`] instead.

use crate::data::{Dataset, Labels};
use crate::error::Result;
use crate::eval::Prediction;

/// Parameters of a classifier. Validated once, at fit.
pub trait Fit {
    /// The fitted classifier.
    type Fitted: Predict;
    /// Fit on the reference cells and their labels (cells without a label are left out).
    fn fit(&self, reference: &Dataset, labels: &Labels) -> Result<Self::Fitted>;
}

/// A fitted classifier.
pub trait Predict {
    /// Class and score of every query cell; genes are matched to the reference's by name.
    fn predict(&self, query: &Dataset) -> Result<Prediction>;
}
