"""Task-specific code, one folder a method (as ``monai.apps``): core never imports an app, apps never import each other."""
