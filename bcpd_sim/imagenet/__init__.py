"""ImageNet-1k: ImageFolder data with Pillow decoding, torchvision-compatible ResNets and
mdistiller's MobileNetV1, and the mdistiller ImageNet recipes for the paper's two pairs."""
