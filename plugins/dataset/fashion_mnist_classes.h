/* fashion_mnist_classes.h: the ten Fashion-MNIST classes by label, spelled as Zalando's
 * dataset description prints them. One table for both plugins that serve Fashion-MNIST
 * labels (fashion_mnist and av_fashion_mnist), so that their runs name the classes alike.
 * A static table, not an exported symbol: each plugin is its own shared object. */
#ifndef MPSL_FASHION_MNIST_CLASSES_H
#define MPSL_FASHION_MNIST_CLASSES_H

#define FMNIST_CLASSES 10

static const char *const fmnist_class_names[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

#endif
