package p2p

// maxFrameLimit is the largest MaxFrameSize a config may ask for (1 GiB).
const maxFrameLimit = 1 << 30
