/* mscoco.c: MS-COCO 2014 with Karpathy's split -> a retrieval file (see karpathy.c).
 *
 * Raw layout (`mpsl fetch mscoco`): DIR/caption_datasets/dataset_coco.json, whose entries
 * name their folder ("filepath": "train2014" or "val2014"), and the images unpacked from
 * train2014.zip and val2014.zip: DIR/train2014/train2014/COCO_train2014_*.jpg (the zip's own
 * top folder inside the extraction folder); DIR/train2014/COCO_train2014_*.jpg is accepted
 * too. Karpathy's restval images (from val2014) join train, as in his split (113287 train). */
#include "convert/convert_internal.h"

int convert_mscoco(const convert_options *o, mpsl_error *err)
{
    static const char *const dirs[] = {"%s/%s", "%s", "images/%s"};
    karpathy_spec k = {"mscoco", "dataset_coco.json", dirs,
                       (int)(sizeof dirs / sizeof dirs[0]), 96};
    return convert_karpathy(o, &k, err);
}
