from .attribute import AttributeRegularizationLoss, attribute_regularization

__all__ = ["AttributeRegularizationLoss", "attribute_regularization"]
