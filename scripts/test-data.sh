#!/usr/bin/env bash
# Explain where the face-test images come from. They are never committed here.
here="$(cd "$(dirname "$0")/.." && pwd)"
target="$here/../shared/faces"
if [ -d "$target" ]; then
  echo "Test images found at $target"
  exit 0
fi
cat <<MSG
The face tests read public photos of public adults from ../shared/faces
(next to this checkout). They come from the MIT-licensed face_recognition
project (github.com/ageitgey/face_recognition), examples/ and tests/test_images/.

To get them:
  git clone --depth 1 https://github.com/ageitgey/face_recognition /tmp/fr
  mkdir -p ../shared/faces/{enrol,events,video,formats}
  # enrol/<identity>/  reference photos: obama, biden, kit_harington,
  #                    rose_leslie, alex_lacamoire, lin_manuel_miranda
  # events/            two_people.jpg, kit_with_rose.jpg, johnsnow_test1.jpg,
  #                    alex_lacamoire1.jpg, obama*.jpg, obama_and_biden.jpg ...
  # video/             short_hamilton_clip.mp4
  # formats/           rgba_32bit.png
and see ../shared/faces/README.md in the project's shared folder for the
ground truth of each file. Until then the face tests are skipped.
MSG
