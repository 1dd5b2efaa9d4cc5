export const dictionary = {
  "a": "AH0",
  "abc": "AH0 x1",
  "abc" "AH0",
  "abd": "# a comment only",
  abc: "AH0",
  "abe": "AH0", junk
}
