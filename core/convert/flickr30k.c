/* flickr30k.c: Flickr30K with Karpathy's split -> a retrieval file (see karpathy.c).
 *
 * Raw layout (`mpsl fetch flickr30k`): DIR/caption_datasets/dataset_flickr30k.json and the
 * images DIR/flickr30k-images/flickr30k-images/NAME.jpg (the archive's own top folder inside
 * the extraction folder); DIR/flickr30k-images/NAME.jpg and the Kaggle copy's
 * flickr30k_images/ folders are accepted too. */
#include "convert/convert_internal.h"

int convert_flickr30k(const convert_options *o, mpsl_error *err)
{
    static const char *const dirs[] = {
        "flickr30k-images/flickr30k-images",
        "flickr30k-images",
        "flickr30k-images/flickr30k_images",
        "flickr30k_images/flickr30k_images",
        "flickr30k_images",
    };
    karpathy_spec k = {"flickr30k", "dataset_flickr30k.json", dirs,
                       (int)(sizeof dirs / sizeof dirs[0]), 96};
    return convert_karpathy(o, &k, err);
}
